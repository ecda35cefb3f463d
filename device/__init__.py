"""Firmware of the Kuaichu reporting units (in-car unit and roadside kiosk).

``hal`` holds the hardware behind small interfaces, each with the backend a Raspberry Pi runs and
a simulated one; everything above it is the same code on a Pi, in the demo and in the tests.
"""
