"""Time: the clock, availability, slots, holidays, bookings, the Calendar adapter and the outbox."""
