-- A small DNS-like database: tables, a view, a procedure, a trigger and some awkward data.
CREATE TABLE zones (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL UNIQUE,
  serial BIGINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE records (
  id INT AUTO_INCREMENT PRIMARY KEY,
  zone_id INT NOT NULL,
  name VARCHAR(255) NOT NULL,
  type ENUM('A','AAAA','CNAME','MX','TXT') NOT NULL,
  content TEXT,
  raw VARBINARY(64),
  FOREIGN KEY (zone_id) REFERENCES zones(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `audit log` (
  id INT AUTO_INCREMENT PRIMARY KEY,
  note VARCHAR(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO zones (name) VALUES ('example.org'), ('ação.example');
INSERT INTO records (zone_id, name, type, content, raw) VALUES
  (1, 'www', 'A', '192.0.2.10', 0x00FF7F0D0A),
  (1, '@', 'TXT', 'v=spf1 -all; USE `demo_dns`; -- not a statement', NULL),
  (1, 'mail', 'MX', '10 mx.example.org', NULL),
  (2, 'www', 'AAAA', '2001:db8::1 😀', 0x5C27223B);
INSERT INTO `audit log` (note) VALUES ('created'), (NULL);

CREATE VIEW record_count AS SELECT zone_id, COUNT(*) AS n FROM records GROUP BY zone_id;

DELIMITER ;;
CREATE PROCEDURE bump_serial(IN zone INT)
BEGIN
  UPDATE zones SET serial = serial + 1 WHERE id = zone;
  SELECT serial FROM zones WHERE id = zone;
END;;
CREATE TRIGGER records_audit AFTER INSERT ON records FOR EACH ROW
BEGIN
  INSERT INTO `audit log` (note) VALUES (CONCAT('record ', NEW.name));
END;;
DELIMITER ;
