//! Typing rules: parsing (YAML or JSON) and matching.
