-- One database per service (docs/architecture.md#services-and-their-data). Each service
-- migrates its own at start-up.
CREATE DATABASE users;
CREATE DATABASE inventory;
CREATE DATABASE orders;
CREATE DATABASE payments;
