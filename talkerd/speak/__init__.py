"""Speaking: a clause or a recording → audio with its mouth track → the speaker."""
