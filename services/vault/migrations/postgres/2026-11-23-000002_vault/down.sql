DROP TABLE vault_settings;
DROP TABLE credential_values;
DROP TABLE credentials;
DROP TABLE credential_types;
DROP TABLE companies;
DROP TABLE vault_keys;
DROP TABLE vault_meta;
