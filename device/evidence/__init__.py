"""Evidence the unit sends on request: stills from the camera and the video from before the press."""
