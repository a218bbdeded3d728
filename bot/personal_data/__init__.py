"""Personal values of the account chores (NUMEN, birth date, phone, e-mail): parsing, masking,
redaction of free text, and the short-lived encrypted vault that keeps them out of Rasa."""
