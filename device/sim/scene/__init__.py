"""What the simulated camera sees: a street in Kunming just after a minor rear-end crash.

The demo, the dispatcher console, the plate reader and the browser tests all need a picture a
real camera could have taken, with two readable plates, and they need to know exactly where those
plates are, which no photograph can tell them. So the scene is laid out in metres and projected
through a pinhole camera: one seed gives the same street, cars and plates at any resolution, the
640x480 video and the 2028x1520 still alike, and every plate's corners come out of the same
projection that drew it.

A frame must cost little (15 fps on one core), so everything that does not move is drawn once per
scene, supersampled and in two variants (hazard lamps on and off); a frame copies one of them
through a slightly shaken crop, draws the few moving things (a pedestrian, an oncoming car),
adds sensor noise and stamps a frame counter that ``read_frame_counter`` reads back.
"""

from device.sim.scene.counter import read_frame_counter, stamp_frame_counter
from device.sim.scene.frames import PlateTruth, RenderedFrame, Role
from device.sim.scene.render import Scene

__all__ = ["PlateTruth", "RenderedFrame", "Role", "Scene", "read_frame_counter", "stamp_frame_counter"]
