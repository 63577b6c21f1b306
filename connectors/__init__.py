"""Engine packages: everything that speaks one database engine lives in its own sub-package."""
