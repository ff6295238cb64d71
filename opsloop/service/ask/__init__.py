"""Ask: answers for people. Documents (the business's FAQ, policies, price lists) searched and
quoted with citations, and the read-only operations chat over the ledger. It reads every other
stage's results and changes none of them."""
