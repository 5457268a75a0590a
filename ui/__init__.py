"""What the officer sees and touches: front display, button, LED and haptics."""
