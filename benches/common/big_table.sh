# Shared by the dump benches (sourced): the SQL that makes the generated `big` table of ROWS
# articles (deterministic: every value derives from the row id) and leaves the helper table
# `k` (0..999) for the caller to use and drop.
#   big_table_sql ROWS
big_table_sql() {
    local rows=$1
    cat <<EOF
CREATE TABLE big (
  id INT PRIMARY KEY, title VARCHAR(255) NOT NULL, body TEXT NOT NULL,
  data VARBINARY(32) NULL, created INT NOT NULL, changed INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE k (n INT PRIMARY KEY);
INSERT INTO k WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 999) SELECT n FROM s;
INSERT INTO big
  SELECT x.n, CONCAT('Article ', x.n, ' about ', SUBSTR(MD5(x.n), 1, 6)),
         CONCAT('Lorem ipsum dolor sit amet ', MD5(x.n * 7), ' consectetur ', SHA1(x.n),
                ' adipiscing elit, sed do eiusmod tempor ', x.n % 977),
         UNHEX(SUBSTR(SHA1(x.n * 3), 1, 16)), 1600000000 + x.n, 1600000000 + x.n * 2
  FROM (SELECT c.n * 1000000 + a.n * 1000 + b.n AS n FROM k a, k b, k c
        WHERE c.n < $(((rows + 999999) / 1000000)) AND c.n * 1000000 + a.n * 1000 + b.n < $rows) x;
EOF
}
