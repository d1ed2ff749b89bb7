-- A starting wrap-up catalogue, so a new call center's agents can close calls on day one.
-- Edit the table to suit (set active = false rather than deleting a code that history uses).
INSERT INTO dispositions (code, label) VALUES
    ('resolved', 'Resolved'),
    ('follow_up', 'Follow-up needed'),
    ('escalated', 'Escalated'),
    ('callback_promised', 'Callback promised'),
    ('sale', 'Sale'),
    ('information', 'Information given'),
    ('wrong_number', 'Wrong number')
ON CONFLICT (code) DO NOTHING;
