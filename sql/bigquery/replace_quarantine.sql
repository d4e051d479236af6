-- Before a re-run day is committed: remove quarantined rows earlier runs wrote for the same source files.
DELETE FROM `${project}.${dataset}.quarantine`
WHERE source IN UNNEST(@sources);
