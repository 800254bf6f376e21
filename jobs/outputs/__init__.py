"""What a night leaves for people: the report and its charts, the exports and workbook, the
data dictionary, the summary and notifications, and the helpers they share."""
