"""SMTP replies: parsing and classification, and the rule tables (data)."""
