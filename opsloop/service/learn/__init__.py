"""Learn: what happened next. Models trained on reviews and outcomes, their versions,
backtests of playbooks over history, and the metrics and dashboard that say whether
OpsLoop helps. It may read every other stage's results."""
