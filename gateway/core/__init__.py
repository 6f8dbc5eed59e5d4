"""The request core: from a parsed body to a decision (context, policy, selection, budgets,
exploration), and what a served request cost."""
