"""Qt-free tools: one module per tab of the window (request, results, job, export) and their registry."""
