"""Video data: annotation files, decoding, frame sampling, augmentation, and the synthetic set."""
