//! The fabricwatch node agent.
