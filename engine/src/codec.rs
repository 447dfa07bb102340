//! The fixed little-endian layout of commands in journal records.
