"""The device's side of the live video call that follows an accepted report."""
