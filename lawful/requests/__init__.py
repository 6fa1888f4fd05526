"""Data-subject requests: intake, verification, deadlines, execution, delivery and proof."""
