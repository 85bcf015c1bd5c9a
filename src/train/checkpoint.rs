//! Resume checkpoints.
