"""Face tracking: the detector, the face mesh, head pose, aligned crops, named point sets and the
tracker that combines them into one FaceObservation per frame; the hand tracker.
"""
