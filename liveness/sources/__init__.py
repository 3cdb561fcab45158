"""Frames in: video files (PyAV) and the WebRTC side of a live call (newest-frame slot, frame
adapter).
"""
