"""The sample business behind `opsloop demo`: a simulated B2B company with a hidden ground
truth (`simulator`), the pretend mail server, chat and CRM its actions land in (`sinks`), and
the command that loads it into OpsLoop and serves it (`run`)."""
