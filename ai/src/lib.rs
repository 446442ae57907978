//! LLM diagnosis for AIAnalysis (kube-free core).
