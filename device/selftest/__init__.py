"""``kuaichu device selftest``: a field technician's proof that a unit works, part by part.

Every check drives the part through the same code the firmware uses (``device.hardware``), so a
pass means the firmware will find the part working, and the end-to-end test report goes through
the broker and the server exactly as a real report does, without opening a case.
"""
