// API sketch; implemented in this module.
