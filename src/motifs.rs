//! motifs
