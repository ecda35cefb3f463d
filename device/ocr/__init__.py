"""On-device plate OCR: find the plates in a frame, straighten them, read them, check the grammar.

Everything here runs on the unit's CPU with the int8 TFLite models from ``models/``; no
TensorFlow at run time. Bad images and missing models raise ``OcrError`` subclasses, never
anything the device service would crash on.
"""
