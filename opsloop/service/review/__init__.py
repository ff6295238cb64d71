"""Review: people's verdicts on decisions (the inbox, approve, override, reject) and the
autonomy a playbook earns from them; an approved decision's actions go to `deliver`."""
