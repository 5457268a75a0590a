"""Everything about video: frame sources, the pre-event ring and the segmenter."""
