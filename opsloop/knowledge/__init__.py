"""Knowledge: the business's documents made searchable. Text drawn out of Markdown, HTML, PDF
and plain text, cut into passages along its headings, retrieved for a question, and the
citations of an answer checked against what was retrieved."""
