-- 0008 attempts without a lease index, rolled back: the lease is unique again.
ALTER TABLE attempts ADD CONSTRAINT attempts_lease_key UNIQUE (lease);
