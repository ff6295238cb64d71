"""Reasoning: features from history, expressions, scorecards, rules, guardrails, explanations."""
