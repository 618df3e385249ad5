-- Vigil store, schema 3: which FHIR Patient (and Encounter) an admission is
-- linked to, sealed under the PHI key like the patient's identity.
CREATE TABLE fhir_links (
    admission   TEXT PRIMARY KEY REFERENCES admissions(id),
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);
