"""The parties' phones in the web app: reporting with no unit (reports), photos (photos); their
calls are in server/calls/participants.py."""
