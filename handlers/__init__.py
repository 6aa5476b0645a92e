"""The ways in and out of dxdesk: LINE webhook and API, simulator, staff console."""
