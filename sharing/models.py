"""Access requests, grants, audit, share links and exports land here (issues 4 and 5)."""
