"""The staff console at /admin, one blueprint per area under the `console` blueprint, which signs staff in, checks
the CSRF token of every POST and the role of whoever acts (handlers/console/common.py) for all of them."""
from flask import Blueprint

from handlers.console import (
    activities, assignments, auth, bookings, cases, common, conversations, coordinators, messages, popup, privacy,
    reports, seminars, weekly,
)

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates")
bp.before_request(activities.allow_photo_uploads)  # before the guard reads the form
bp.before_request(common.guard)
bp.before_request(conversations.count_unanswered)
bp.after_request(common.private)
bp.context_processor(common.helpers)
bp.context_processor(assignments.helpers)
bp.context_processor(conversations.queue_count)
for area in (auth, reports, cases, assignments, conversations, bookings, popup, coordinators, messages, seminars, privacy,
             activities, weekly):
    bp.register_blueprint(area.bp)

