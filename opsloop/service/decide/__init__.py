"""Decide: events become decisions. Playbooks are applied and versioned here, each event runs
the playbooks it triggers (with the language model where a playbook asks for it), and the
decision is explained, stored and handed to `review`."""
