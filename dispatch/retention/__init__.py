"""Retention (PIPL Art. 19, 47): the job that anonymises or deletes personal data past its
period (`job`), and the legal hold that keeps a case out of it (`holds`)."""
