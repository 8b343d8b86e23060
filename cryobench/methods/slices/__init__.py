"""Shared pieces of the slice detectors (``faster_rcnn``, ``yolo_unet``).

2D z-slice datasets with per-particle boxes, YOLO's dataset format, lifting of 2D detections to
3D picks, the post-processing variants of the top CZII solutions and YOLO + U-Net fusion.
Everything here is plain NumPy / pandas / SciPy; torchvision and ultralytics are imported only by
the methods.
"""
