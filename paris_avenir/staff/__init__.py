"""Staff: référents, psychologists, supervisors and admins, their teams and caseloads."""
