"""A seeded, physically motivated sensor simulator: dark frames, night-sky light frames, truth."""
