-- One database per service (ARCHITECTURE.md §4). Each service migrates its own at start-up.
CREATE DATABASE users;
CREATE DATABASE inventory;
CREATE DATABASE orders;
CREATE DATABASE payments;
