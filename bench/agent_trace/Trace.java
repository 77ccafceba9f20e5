// Where Baumgarten's A* agent goes in a level: its position every frame and the game's events.
//
//   javac -cp bench/.agent/PlayAstar.jar -d /tmp/trace bench/agent_trace/Trace.java
//   java -cp bench/.agent/PlayAstar.jar:/tmp/trace Trace LEVEL.txt bench/.agent/whl/mario_gpt/simulator/img/ 20
//
// Prints STATUS (WIN, LOSE, TIME_OUT), completion and hurts; then every Nth frame "A t x y col
// row onGround actions" (actions: L R D S(peed) J(ump) U); then the events "E type param x y t"
// (type: 1 bump, 2 stomp, 6 jump, 7 land, 11 lose, 12 win; x, y in px, y at the feet, 16 px a tile).
// Same game and agent as PlayAstar.jar's main (200 s clock), for the bench only: gen needs no Java.
import engine.core.MarioAgentEvent;
import engine.core.MarioEvent;
import engine.core.MarioGame;
import engine.core.MarioResult;
import java.nio.file.Files;
import java.nio.file.Paths;

public class Trace {
    public static void main(String[] args) throws Exception {
        String level = new String(Files.readAllBytes(Paths.get(args[0])));
        int every = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        MarioResult result = new MarioGame().playAstar(new agents.robinBaumgarten.Agent(), level, 200, false, args[1]);
        System.out.println("STATUS " + result.getGameStatus() + " " + result.getCompletionPercentage()
                + " hurts " + result.getMarioNumHurts());
        int frame = 0;
        for (MarioAgentEvent e : result.getAgentEvents()) {
            if (frame++ % every != 0) continue;
            StringBuilder pressed = new StringBuilder();
            boolean[] actions = e.getActions();
            for (int k = 0; k < actions.length; k++) if (actions[k]) pressed.append("LRDSJU".charAt(k));
            System.out.printf("A t=%d x=%.1f y=%.1f col=%d row=%d g=%b %s%n", frame, e.getMarioX(), e.getMarioY(),
                    (int) (e.getMarioX() / 16), (int) (e.getMarioY() / 16), e.getMarioOnGround(), pressed);
        }
        for (MarioEvent e : result.getGameEvents())
            System.out.printf("E type=%d p=%d x=%.1f y=%.1f t=%d%n", e.getEventType(), e.getEventParam(),
                    e.getMarioX(), e.getMarioY(), e.getTime());
    }
}
