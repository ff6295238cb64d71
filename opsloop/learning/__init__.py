"""Learning: outcomes and reviews become datasets, models, backtests and the promotion gate.

The modules here take plain values (rows as dicts or a pandas DataFrame, lists of texts) and
return plain typed results; the service layer feeds them from the ledger and stores what they
return. `datasets` labels rows from the ledger, `tabular` scores subjects from their features,
`text` triages messages, `evidence` says how far a held-out score can be trusted (its interval,
whether it shows skill, the notes in words), `walk_forward` retrains before each period and
scores it, `artifacts` turns a trained model into bytes a database can keep (and back, safely),
`replay` reruns playbooks over history and `readiness` judges agreement with reviewers.
"""
