"""Test support shared by the tiers: a small hand-made reference world, fixed clocks, event builders."""
