"""Domain types and playbook model: pure Python, no I/O, imports nothing else of ours."""
