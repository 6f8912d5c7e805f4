-- F1 floor: the single hot row
UPDATE f1.hot SET v = v - 1 WHERE id = 1;
